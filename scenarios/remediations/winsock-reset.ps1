netsh winsock reset
Restart-Computer -Force
