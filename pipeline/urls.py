from django.urls import path

from pipeline import team_views, terms_views, views

urlpatterns = [
    path("deals/", views.deal_list, name="deal_list"),
    path("deals/board/", views.deal_board, name="deal_board"),
    path("deals/board/move/", views.deal_board_move, name="deal_board_move"),
    path("deals/new/", views.deal_new, name="deal_new"),
    path("deals/terms/", views.deal_terms, name="deal_terms"),
    path("deals/new/customer/", views.deal_customer_new, name="deal_customer_new"),
    path("deals/<int:pk>/", views.deal_detail, name="deal_detail"),
    path("deals/<int:pk>/edit/", views.deal_edit, name="deal_edit"),
    path("deals/<int:pk>/move/", views.deal_move, name="deal_move"),
    path("deals/<int:pk>/touches/", views.touch_new, name="touch_new"),
    path(
        "deals/terms-changes/<int:pk>/decide/",
        terms_views.terms_change_decide,
        name="terms_change_decide",
    ),
    path("customers/", views.customer_list, name="customer_list"),
    path("customers/new/", views.customer_new, name="customer_new"),
    path("customers/<int:pk>/", views.customer_detail, name="customer_detail"),
    path("customers/<int:pk>/edit/", views.customer_edit, name="customer_edit"),
    path("team/", team_views.team_page, name="team"),
    path("team/invite/", team_views.team_invite, name="team_invite"),
    path("team/<int:pk>/deactivate/", team_views.team_deactivate, name="team_deactivate"),
    path("team/join/<str:uidb64>/<str:token>/", team_views.team_join, name="team_join"),
]
