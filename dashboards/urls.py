from django.urls import path

from dashboards import activity_views, board_views, merge_views, views

# The same paths and names they had in pipeline's urls: templates and links keep working.
urlpatterns = [
    path("", views.home, name="home"),
    path("search/", views.search_page, name="search"),
    path("deals/import/", board_views.deal_import, name="deal_import"),
    path("board/", board_views.board_view, name="board"),
    path("board/export.csv", board_views.board_export, name="board_export"),
    path("board/charts/", board_views.board_charts, name="board_charts"),
    path("activity/", activity_views.activity_view, name="activity"),
    path("customers/matches/", merge_views.customer_matches_view, name="customer_matches"),
    path(
        "customers/<int:pk>/merge/<int:other>/",
        merge_views.customer_merge_view,
        name="customer_merge",
    ),
    path(
        "customers/<int:pk>/distinct/<int:other>/",
        merge_views.customer_distinct_view,
        name="customer_distinct",
    ),
]
