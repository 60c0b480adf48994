"""Accounts under /accounts/: Django's own log-in, password reset and change views,
and Cleared's two-factor and security pages (pipeline.account_views)."""

from django.contrib.auth import views as auth_views
from django.urls import path

from pipeline import account_views
from pipeline.account_forms import PasswordChangeForm

urlpatterns = [
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path(
        "password/reset/",
        auth_views.PasswordResetView.as_view(
            # Plain text only; the same answer whether the address exists or not.
            email_template_name="registration/password_reset_email.txt",
            subject_template_name="registration/password_reset_subject.txt",
        ),
        name="password_reset",
    ),
    path(
        "password/reset/done/",
        auth_views.PasswordResetDoneView.as_view(),
        name="password_reset_done",
    ),
    path(
        "reset/<uidb64>/<token>/",
        account_views.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path(
        "reset/done/",
        auth_views.PasswordResetCompleteView.as_view(),
        name="password_reset_complete",
    ),
    path(
        "password/change/",
        auth_views.PasswordChangeView.as_view(form_class=PasswordChangeForm),
        name="password_change",
    ),
    path(
        "password/change/done/",
        auth_views.PasswordChangeDoneView.as_view(),
        name="password_change_done",
    ),
    path("two-factor/", account_views.two_factor_verify, name="two_factor_verify"),
    path("two-factor/setup/", account_views.two_factor_setup, name="two_factor_setup"),
    path(
        "two-factor/enroll/<str:uidb64>/<str:token>/",
        account_views.two_factor_enroll,
        name="two_factor_enroll",
    ),
    path(
        "two-factor/recovery-codes/",
        account_views.two_factor_recovery_codes,
        name="two_factor_recovery_codes",
    ),
    path("security/", account_views.account_security, name="account_security"),
    path(
        "security/recovery-codes/",
        account_views.recovery_codes_regenerate,
        name="recovery_codes_regenerate",
    ),
    path(
        "security/two-factor/remove/",
        account_views.two_factor_remove,
        name="two_factor_remove",
    ),
    path(
        "security/log-out-everywhere/",
        account_views.log_out_everywhere,
        name="log_out_everywhere",
    ),
]
