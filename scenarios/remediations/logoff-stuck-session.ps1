# The admin reads the session list, then logs off the user's hung session (ID 2 in the list).
query session
logoff 2
