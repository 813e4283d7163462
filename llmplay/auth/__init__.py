"""Teams: users, roles and the access checks every state-changing handler makes (no gradio here)."""
