import os

from django import forms

from .models import Upload

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".gif", ".webp", ".tif", ".tiff"}


class UploadForm(forms.ModelForm):
    class Meta:
        model = Upload
        fields = ["image", "email"]

    def clean_image(self):
        image = self.cleaned_data["image"]
        if os.path.splitext(image.name)[1].lower() not in IMAGE_EXTENSIONS:
            raise forms.ValidationError("Upload a picture (JPEG, PNG, GIF, WebP or TIFF).")
        return image
