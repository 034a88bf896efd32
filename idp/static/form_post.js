// OAuth 2.0 Form Post Response Mode: submit the hidden form back to the client.
// Served from our origin so the CSP needs no 'unsafe-inline'.
document.addEventListener("DOMContentLoaded", function () {
  var form = document.getElementById("form-post");
  if (form) { form.submit(); }
});
