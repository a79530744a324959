#!/usr/bin/env python
"""Django's command-line utility for the lab's Django service."""

import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "banksite.settings")
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    try:
        execute_from_command_line(sys.argv)
    except ImproperlyConfigured as error:
        if "--traceback" in sys.argv:
            raise
        # the settings' message says what to set; a traceback would only bury it
        sys.exit(f"error: {error}")
