"""The web console served by ``keyops serve`` at ``/console/`` (see ``views.py``)."""
