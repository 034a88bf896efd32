"""Page texts in Chinese (default) and English. Pure."""

from __future__ import annotations

DEFAULT = "zh-CN"
LOCALES = ("zh-CN", "en")

MESSAGES: dict[str, tuple[str, str]] = {
    "site.title": ("一网通办统一身份认证", "Yiwang unified identity"),
    "login.title": ("登录", "Log in"),
    "login.for_client": ("登录后继续访问：", "Log in to continue to:"),
    "login.identifier": ("用户名或手机号", "Username or phone number"),
    "login.password": ("密码", "Password"),
    "login.submit": ("登录", "Log in"),
    "login.hint_user": ("请以该用户身份登录", "Please log in as this user"),
    "consent.title": ("授权确认", "Authorize access"),
    "consent.intro": ("以下应用请求访问您的信息：", "This application asks for access to:"),
    "consent.allow": ("同意", "Allow"),
    "consent.deny": ("拒绝", "Deny"),
    "scope.openid": ("确认您的身份（不含个人资料）", "Confirm who you are (no personal data)"),
    "scope.profile": ("姓名和用户名", "Your name and username"),
    "scope.phone": ("手机号码", "Your phone number"),
    "scope.offline_access": ("在您离开后保持访问", "Keep access while you are away"),
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
