from django.urls import path

from dashboards import board_views, views

# The same paths and names they had in pipeline's urls: templates and links keep working.
urlpatterns = [
    path("", views.home, name="home"),
    path("search/", views.search_page, name="search"),
    path("deals/import/", board_views.deal_import, name="deal_import"),
    path("board/", board_views.board_view, name="board"),
    path("board/export.csv", board_views.board_export, name="board_export"),
    path("board/charts/", board_views.board_charts, name="board_charts"),
]
