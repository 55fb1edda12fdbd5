"""Captures of the probe's own traffic: a pcap per probe connection (TCP/IP frames synthesised
from the bytes the probe sent and received, host side on port 3389, RD Gateway on 443, so
Wireshark dissects RDP without "Decode As") and a TLS key log (SSLKEYLOGFILE format) that
decrypts it. Active only inside `probe_capture()`, in the probing thread."""
