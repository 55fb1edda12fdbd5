Restart-Computer -Force
