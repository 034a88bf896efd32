"""Page texts in Chinese (default) and English. Pure."""

from __future__ import annotations

DEFAULT = "zh-CN"
LOCALES = ("zh-CN", "en")

MESSAGES: dict[str, tuple[str, str]] = {
    "site.title": ("一网通办统一身份认证", "Yiwang unified identity"),
    "login.title": ("登录", "Log in"),
    "login.for_client": ("登录后继续访问：", "Log in to continue to:"),
    "login.identifier": ("用户名、手机号或身份证号", "Username, phone or ID number"),
    "login.password": ("密码", "Password"),
    "login.submit": ("登录", "Log in"),
    "login.hint_user": ("请以该用户身份登录", "Please log in as this user"),
    "consent.title": ("授权确认", "Authorize access"),
    "consent.intro": ("以下应用请求访问您的信息：", "This application asks for access to:"),
    "consent.allow": ("同意", "Allow"),
    "consent.deny": ("拒绝", "Deny"),
    "consent.statutory": ("依法履职所需", "required by law"),
    "consent.required": ("本服务必需的信息", "Needed for this service"),
    "consent.required_help": ("不提供以下信息将无法使用本服务；如不同意，请选择“拒绝”。",
                              "The service cannot work without these; if you do not agree, choose Deny."),
    "consent.statutory_title": ("依法提供的信息", "Provided under a statutory duty"),
    "consent.statutory_help": ("该应用依据法定职责获取以下信息，无需取得您的同意，特此告知。",
                               "The portal receives these under a statutory duty; your consent is not needed, "
                               "you are being informed."),
    "consent.optional": ("可选信息（可取消勾选不提供）", "Optional (untick what you do not want to share)"),
    "consent.sensitive": ("敏感个人信息（需单独同意）", "Sensitive personal information (separate consent)"),
    "consent.sensitive_help": ("完整身份证号码属于敏感个人信息，一旦泄露或被非法使用，可能危害您的人身和财产安全。"
                               "仅在该应用确有必要时提供；每次提供都需要您单独确认，不会被记住。",
                               "The full ID number is sensitive personal information: leaked or misused, it can "
                               "harm your personal and property safety. Share it only where the portal truly needs "
                               "it; every release needs your separate confirmation and is never remembered."),
    "consent.sensitive_confirm": ("我单独同意本次向该应用提供上述敏感个人信息",
                                  "I separately agree to share the sensitive information above with this portal, "
                                  "this time"),
    "totp.replace_help": ("您已绑定身份验证器。更换前，请输入当前验证器显示的验证码或一个恢复码；"
                          "如已全部丢失，请联系管理员重置。",
                          "You already have an authenticator. To replace it, enter a code from it or one of your "
                          "recovery codes; if you lost both, ask an administrator to reset it."),
    "totp.current": ("当前验证器的验证码或恢复码", "Code from your current authenticator, or a recovery code"),
    "err.current_factor_required": ("请输入当前验证器的验证码或恢复码，才能更换验证器。",
                                    "Enter a code from your current authenticator, or a recovery code, to replace it."),
    "err.too_many_attempts": ("验证码错误次数过多，请稍后再试。", "Too many wrong codes. Wait a while before trying again."),
    "consent.admin": ("管理权限（每次单独确认）", "Administrative access (confirmed every time)"),
    "consent.admin_help": ("该应用请求以您的管理员身份调用统一身份认证的管理接口，可按您的管理员角色查看和修改系统数据。"
                           "只有在您本人刚刚启动该管理工具时才应同意；每次都需重新确认，不会记住。",
                           "This application asks to use Yiwang's administration API as you, with what your "
                           "administrator roles allow. Allow only if you started this administration tool yourself "
                           "just now; this is asked every time and never remembered."),
    "consent.already": ("您此前已同意提供：", "You agreed before to share:"),
    "consent.none": ("该应用只确认您的身份，不获取您的个人资料。",
                     "This portal only confirms who you are and receives no personal data."),
    "scope.openid": ("确认您的身份（不含个人资料）", "Confirm who you are (no personal data)"),
    "scope.profile": ("姓名和用户名", "Your name and username"),
    "scope.phone": ("手机号码", "Your phone number"),
    "scope.offline_access": ("在您离开后保持访问", "Keep access while you are away"),
    "scope.admin": ("以管理员身份管理易网（需第二因素）", "Administer Yiwang as an administrator (second factor required)"),
    "scope.realname": ("实名核验结果（是否已实名、认证等级、是否成年等，不含完整身份证号）", "Verification results (verified or not, level, whether adult …; never the full ID number)"),
    "scope.legal_person": ("单位信息（统一社会信用代码、名称、证书颁发机构）", "Organisation: credit code, name and certificate issuer"),
    "error.title": ("出错了", "Something went wrong"),
    "error.back": ("请返回发起登录的网站重试。", "Please go back to the site you came from and try again."),
    "logout.title": ("退出登录", "Log out"),
    "logout.confirm": ("确定要退出统一身份认证吗？", "Do you want to log out of Yiwang?"),
    "logout.submit": ("退出", "Log out"),
    "logout.cancel": ("取消", "Cancel"),
    "logout.done": ("您已安全退出。", "You have been logged out."),
    "logout.continue": ("返回应用", "Return to the application"),
    "home.title": ("账户", "Account"),
    "home.signed_in": ("您已登录。", "You are logged in."),
    "home.signed_out": ("您尚未登录。", "You are not logged in."),
    "form.redirecting": ("正在返回应用……", "Returning to the application…"),
    "form.continue": ("继续", "Continue"),
    "csrf.expired": ("页面已过期，请重试。", "This page has expired. Please try again."),
    "nav.account": ("我的账户", "My account"),
    "cert.title": ("法人数字证书登录", "Log in with an organisation certificate"),
    "cert.link": ("使用法人数字证书（UKey）登录", "Log in with an organisation certificate (UKey)"),
    "cert.intro": ("请用证书驱动或签名工具对下面的挑战值签名，然后粘贴证书和签名。", "Sign the challenge below with your UKey middleware or the signer tool, then paste the certificate and the signature."),
    "cert.challenge": ("挑战值（一次有效，5 分钟内）：", "Challenge (single use, valid 5 minutes):"),
    "cert.certificate": ("证书（PEM）", "Certificate (PEM)"),
    "cert.chain": ("中间证书（PEM，可选）", "Intermediate certificates (PEM, optional)"),
    "cert.signature": ("签名（Base64）", "Signature (Base64)"),
    "cert.signature_format": ("SM2 证书：对挑战值做 SM3 摘要的 SM2 签名（含 Z 值，默认签名者标识 1234567812345678），DER 编码的 SEQUENCE {r, s}，也接受 64 字节的 r‖s；RSA 和 ECDSA 证书：SHA-256 签名。", "SM2 certificates: the SM2 signature with SM3 over the challenge (with the Z value; default signer ID 1234567812345678), DER SEQUENCE {r, s}; the 64-byte r‖s form is accepted too. RSA and ECDSA certificates: a SHA-256 signature."),
    "cert.mtls": ("使用浏览器中的客户端证书", "Use the client certificate in my browser"),
    "company.title": ("单位账户", "Organisation account"),
    "company.name": ("单位名称", "Name"),
    "company.certificates": ("数字证书", "Certificates"),
    "company.mandates": ("经办人授权", "Agents' mandates"),
    "company.revoked": ("已撤销", "revoked"),
    "company.revoke": ("撤销", "Revoke"),
    "company.grant": ("授权经办人", "Grant a mandate"),
    "company.agent": ("经办人（用户名、手机号或身份证号）", "Agent (username, phone or ID number)"),
    "company.scope": ("授权事项（空格分隔的英文小写词）", "What the agent may do (lower-case words)"),
    "company.days": ("有效天数", "Valid for (days)"),
    "err.no_agent": ("未找到该个人账户。", "No such person account."),
    "err.bad_days": ("有效期须为 1 至 1095 天。", "Validity is 1 to 1095 days."),
    "err.no_mandate": ("没有这项授权。", "No such mandate."),
    "actas.title": ("选择身份", "Choose whom you act for"),
    "actas.intro": ("您可以代表以下单位办理：", "You may act for these organisations:"),
    "actas.self": ("以个人身份继续", "Continue as myself"),
    "actas.submit": ("继续", "Continue"),
    "cert.reason.unknown_issuer": ("证书不是由已登记的证书认证机构签发的。", "The certificate was not issued by a registered certificate authority."),
    "cert.reason.ca_disabled": ("签发该证书的认证机构已停用。", "The certificate authority that issued this certificate is disabled."),
    "cert.reason.bad_signature": ("证书签名无效。", "The certificate signature is not valid."),
    "cert.reason.expired": ("证书已过期。", "The certificate has expired."),
    "cert.reason.not_yet_valid": ("证书尚未生效。", "The certificate is not yet valid."),
    "cert.reason.not_a_ca": ("证书链中的某个证书无权签发证书。", "A certificate in the chain is not allowed to issue certificates."),
    "cert.reason.key_usage": ("该证书不能用于数字签名。", "The certificate is not allowed for digital signatures."),
    "cert.reason.extended_key_usage": ("该证书不能用于此用途。", "The certificate is not allowed for this purpose."),
    "cert.reason.revoked": ("证书已被吊销。", "The certificate has been revoked."),
    "cert.reason.revocation_unknown": ("无法确定证书的吊销状态。", "The revocation status of the certificate could not be determined."),
    "cert.reason.sm2_signer_id": ("SM2 签名所用的签名者标识（用户 ID）与该证书认证机构使用的不一致。", "The SM2 signature was made with a different signer ID than the certificate authority uses."),
    "cert.reason.sm2_wrong_curve": ("证书的 SM2 密钥或签名不在 SM2 曲线上。", "The certificate's SM2 key or signature is not on the SM2 curve."),
    "cert.reason.encryption_certificate": ("这是加密证书；请使用同一 UKey 中的签名证书登录。", "This is an encryption certificate; log in with the signing certificate of the same UKey."),
    "cert.proof.signature_not_base64": ("签名不是有效的 Base64 文本。", "The signature is not valid Base64 text."),
    "cert.proof.signature_truncated": ("签名不完整（被截断）。", "The signature is incomplete (truncated)."),
    "cert.proof.signature_not_canonical": ("签名不是规范的 DER 编码。", "The signature is not in canonical DER encoding."),
    "cert.proof.signature_malformed": ("签名格式不正确：应为 DER 编码的 SEQUENCE {r, s}，或 64 字节的 r‖s。", "The signature has the wrong format: expected a DER SEQUENCE {r, s}, or the 64-byte r‖s."),
    "cert.proof.sm2_signer_id": ("签名使用了与该证书认证机构规定不同的 SM2 签名者标识。", "The signature was made with another SM2 signer ID than the certificate authority specifies."),
    "cert.proof.sm2_wrong_curve": ("证书的密钥不在 SM2 曲线上。", "The certificate's key is not on the SM2 curve."),
    "cert.proof.unsupported_key": ("该证书的密钥类型不能用于登录。", "The certificate's key type cannot be used to log in."),
    "cert.reason.malformed_certificate": ("无法读取该证书。", "The certificate could not be read."),
    "cert.reason.no_identifier": ("证书中没有法人标识（统一社会信用代码等）。", "The certificate does not carry a legal-person identifier."),
    "cert.reason.malformed_identifier": ("证书中的法人标识无效。", "The legal-person identifier in the certificate is not valid."),
    "cert.reason.ambiguous_org_code": ("证书中的机构代码或注册号不能唯一对应一个法人。", "The organisation code in the certificate does not match exactly one legal person."),
    "cert.reason.identifier_conflict": ("该证书已绑定到另一个法人。", "The certificate is already bound to a different legal person."),
    "cert.no_client_certificate": ("未收到可信的客户端证书。", "No trusted client certificate was received."),
    "err.certificate_rejected": ("证书未通过验证。", "The certificate was not accepted."),
    "err.bad_signature_proof": ("签名与挑战值或证书不符，请重新签名。", "The signature does not match the challenge or the certificate. Please sign again."),
    "err.challenge_expired": ("挑战值已失效，请使用新的挑战值重新签名。", "The challenge has expired. Please sign the new one."),
    "nav.register": ("注册", "Register"),
    "register.title": ("实名注册", "Register with your real name"),
    "register.intro": ("请填写与居民身份证一致的姓名和号码，我们将与权威人口库核验。", "Enter your name and ID number exactly as on your resident ID card; they are checked against the authoritative population registry."),
    "field.name": ("姓名", "Name"),
    "field.id_number": ("身份证号码", "ID number"),
    "field.phone": ("手机号码", "Mobile phone number"),
    "field.username": ("用户名（可选）", "Username (optional)"),
    "field.password": ("设置密码（至少 8 位）", "Choose a password (8 characters or more)"),
    "field.code": ("验证码", "Code"),
    "register.submit": ("核验并发送短信验证码", "Verify and send an SMS code"),
    "register.confirm.title": ("输入短信验证码", "Enter the SMS code"),
    "register.confirm.intro": ("验证码已发送至", "A code was sent to"),
    "register.confirm.submit": ("完成注册", "Finish registration"),
    "register.duplicate.login": ("登录已有账户", "Log in to the existing account"),
    "mfa.title": ("二次验证", "Second step"),
    "mfa.intro": ("请输入验证器应用中的 6 位动态码。", "Enter the 6-digit code from your authenticator app."),
    "mfa.totp": ("动态码", "Authenticator code"),
    "mfa.recovery": ("或使用恢复码", "Or use a recovery code"),
    "mfa.sms": ("发送短信验证码", "Send an SMS code"),
    "mfa.sms_sent": ("短信验证码已发送。", "An SMS code was sent."),
    "mfa.submit": ("验证", "Verify"),
    "stepup.title": ("需要更高的认证等级", "A higher assurance level is needed"),
    "stepup.verify": ("该应用要求实名认证。请核验您的身份。", "This application requires a verified identity. Please verify it."),
    "stepup.submit": ("核验身份", "Verify identity"),
    "account.title": ("我的账户", "My account"),
    "account.level": ("认证等级", "Assurance level"),
    "account.identity": ("实名信息", "Verified identity"),
    "account.not_verified": ("尚未实名认证", "Not verified yet"),
    "account.verify": ("进行实名认证", "Verify my identity"),
    "account.recheck": ("重新核验", "Check again"),
    "account.consents": ("已授权的应用", "Portals you share data with"),
    "account.history": ("数据共享记录", "Data sharing history"),
    "history.title": ("数据共享记录", "Data sharing history"),
    "history.portal": ("应用", "Portal"),
    "history.all": ("全部", "All"),
    "history.filter": ("筛选", "Filter"),
    "history.export": ("导出（JSON）", "Export (JSON)"),
    "history.purpose": ("用途", "Purpose"),
    "claim.sub": ("账号标识（每个应用不同）", "Account identifier (different for each portal)"),
    "history.releases": ("提供记录（最新在前）", "Releases, newest first"),
    "history.basis": ("处理依据", "Legal basis"),
    "account.withdraw": ("撤回授权", "Withdraw"),
    "account.consent_until": ("授权有效期至", "Consent valid until"),
    "account.phone": ("手机号码", "Phone"),
    "account.phone_verified": ("已验证", "verified"),
    "account.phone_unverified": ("未验证", "not verified"),
    "account.phone_bound": ("已与身份绑定（运营商核验）", "bound to your identity (carrier check)"),
    "account.verify_phone": ("验证手机号", "Verify phone"),
    "account.totp": ("验证器应用（TOTP）", "Authenticator app (TOTP)"),
    "account.totp_on": ("已启用", "enabled"),
    "account.totp_off": ("未启用", "not enabled"),
    "account.totp_enroll": ("设置验证器", "Set up an authenticator"),
    "account.password": ("修改密码", "Change password"),
    "totp.title": ("设置验证器应用", "Set up an authenticator app"),
    "totp.intro": ("用验证器应用扫描二维码，或手动输入密钥，然后输入应用显示的 6 位码。", "Scan the QR code with an authenticator app, or type the key, then enter the 6-digit code it shows."),
    "totp.secret": ("密钥", "Key"),
    "totp.submit": ("启用", "Enable"),
    "recovery.title": ("请保存恢复码", "Save your recovery codes"),
    "recovery.intro": ("每个恢复码只能使用一次，仅显示这一次。", "Each code works once. They are shown only this once."),
    "continue": ("继续", "Continue"),
    "phone.title": ("验证手机号", "Verify your phone"),
    "phone.send": ("发送验证码", "Send code"),
    "phone.submit": ("验证", "Verify"),
    "password.title": ("修改密码", "Change password"),
    "password.current": ("当前密码", "Current password"),
    "password.new": ("新密码", "New password"),
    "password.submit": ("保存", "Save"),
    "saved": ("已保存。", "Saved."),
    "level.cn-l0": ("L0 账户（未实名）", "L0 account (not verified)"),
    "level.cn-l1": ("L1 实名核验（二要素）", "L1 registry-verified identity"),
    "level.cn-l2": ("L2 实名 + 持有因子", "L2 verified identity + possession factor"),
    "level.cn-l3": ("L3 实名 + 人脸核验", "L3 verified identity + face match"),
    "level.cn-l4": ("L4 数字证书", "L4 qualified certificate"),
    "err.invalid_credentials": ("账户或密码错误，或尝试次数过多，请稍后再试。", "The account or password is incorrect, or there were too many attempts. Try again later."),
    "err.verification_failed": ("姓名与身份证号码未能通过核验，请检查后重试。", "The name and ID number could not be verified. Check both and try again."),
    "err.registry_unavailable": ("暂时无法连接权威人口库，未保存任何信息，请稍后重试。", "The identity registry cannot be reached right now. Nothing was saved; please try again later."),
    "err.duplicate_identity": ("该身份证号码已在其他账户实名认证，请登录该账户。", "This ID number is already verified for another account. Log in to that account instead."),
    "err.duplicate_account": ("该用户名或手机号已注册。", "An account with this username or phone number already exists."),
    "err.verification_throttled": ("核验次数过多，请稍后再试。", "Too many verification attempts. Please try again later."),
    "err.otp_throttled": ("验证码请求过于频繁，请稍后再试。", "Too many codes were requested. Please wait before asking for another."),
    "err.bad_code": ("验证码错误或已过期。", "The code is wrong or has expired."),
    "err.bad_phone": ("请输入有效的中国大陆手机号码。", "Enter a valid mainland China mobile number."),
    "err.sms_failed": ("短信发送失败，请稍后重试。", "The SMS could not be sent. Please try again later."),
    "err.registration_throttled": ("来自您所在网络的注册尝试过多，请稍后再试。", "Too many registration attempts from your network. Please try again later."),
    "err.duplicate_registration": ("已有账户使用了您填写的部分信息，未创建新账户。请直接登录该账户，或修改信息后重新注册。", "An account already exists for some of these details, so no new account was created. Log in to that account, or change the details and register again."),
    "err.bad_username": ("用户名为 3–64 个字符（字母、数字、_ . -），以字母开头。", "A username has 3-64 characters (letters, digits, '_', '.', '-'), starting with a letter."),
}


def choose_locale(ui_locales: list[str], accept_language: list[str]) -> str:
    """OIDC Core §3.1.2.1 ui_locales first, then the browser's Accept-Language."""
    for tag in [*ui_locales, *accept_language]:
        t = tag.lower()
        if t.startswith("zh"):
            return "zh-CN"
        if t.startswith("en"):
            return "en"
    return DEFAULT


def translate(key: str, locale: str) -> str:
    zh, en = MESSAGES.get(key, (key, key))
    return en if locale == "en" else zh


def reason_text(reason: str, english: str, locale: str) -> str:
    """A certificate rejection reason in the page language; the English text is the
    fixed public message of the reason (certificates.trust.PUBLIC_MESSAGES)."""
    key = f"cert.reason.{reason}"
    if locale == "en" or key not in MESSAGES:
        return english
    return MESSAGES[key][0]


def error_text(code: str, fallback: str, locale: str) -> str:
    """A domain error's message in the page language (fixed texts only)."""
    key = f"err.{code}"
    return translate(key, locale) if key in MESSAGES else fallback
