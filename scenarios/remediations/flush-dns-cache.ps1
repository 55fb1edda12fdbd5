ipconfig /flushdns
