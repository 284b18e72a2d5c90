"""Serving the control room to other people: SSH demo seats and the browser.

`ssh` runs an asyncssh server that gives each authenticated interactive session its own control
room, a child process in a pseudo-terminal (`pty_session`); `auth` holds who may log in and with
which role; `web` hands the same command line to textual-serve. Nothing here imports the UI: the
seats run `python -m devsim_tui`, so a crashing seat never takes the server or the others down.
"""
