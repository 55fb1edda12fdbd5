# On the host: register its A record again with its current address (DNS dynamic update).
# On the client: the same command also empties its resolver cache.
ipconfig /registerdns
ipconfig /flushdns
