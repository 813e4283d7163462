"""Teams: users, roles and the access checks every state-changing handler makes (no gradio here).

Below every feature that checks a caller: it must not know models, feedback, training, the loop or the UI.
"""
