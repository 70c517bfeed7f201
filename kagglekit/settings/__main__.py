"""`python -m kagglekit.settings > docs/settings.md`: print the settings reference generated from the schema."""
from .flags import markdown

print(markdown(), end="")
