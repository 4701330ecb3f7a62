from django.conf import settings
from django.conf.urls.static import static
from django.urls import path

from gallery import views

urlpatterns = [
    path("", views.upload, name="upload"),
    path("status/<uuid:pk>/", views.status, name="status"),
] + static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)  # DEBUG only
