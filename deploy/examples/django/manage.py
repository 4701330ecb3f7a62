#!/usr/bin/env python3
"""Django's command-line utility for the gallery example (see README.md)."""
import os
import sys

if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "thumbs_site.settings")
    from django.core.management import execute_from_command_line
    execute_from_command_line(sys.argv)
