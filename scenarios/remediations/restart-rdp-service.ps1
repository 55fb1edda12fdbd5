# Restart Remote Desktop Services (TermService).
# TermService has a dependent service (UmRdpService), so Restart-Service refuses without -Force.
Restart-Service -Name TermService -Force
