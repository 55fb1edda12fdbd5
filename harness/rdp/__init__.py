"""Sans-IO implementation of the RDP connection sequence (both roles).

Nothing in this package touches a socket: bytes go in, typed events come out, and bytes to send
are handed back, in the style of h11. The probe and the emulated host are thin drivers around it.
"""
