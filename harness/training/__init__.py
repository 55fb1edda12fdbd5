"""Hands-on labs for trainers: a lab that stays up under a supervisor process, breaks on command,
takes fixes by hand (a real client, PowerShell), checks and hints; classrooms of such labs."""
