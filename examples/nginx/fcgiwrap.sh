#!/bin/sh
# Starts fcgiwrap for nginx.conf beside this file, in the foreground.
#
# This is the exact script the integration tests run (placeholders as in
# nginx.conf).  On Debian, systemd runs fcgiwrap as www-data on
# /run/fcgiwrap.socket (`apt install fcgiwrap`); this does the same by hand,
# on a socket inside @ROOT@.  `exec` keeps the process id.  With -c the
# preforked children outlive a SIGTERM to that id (they are reparented, not
# stopped), so start this in a process group of its own and stop the whole
# group (kill -TERM -- -PGID); without -c one process serves one request at
# a time.
#
# Started as root, it runs fcgiwrap as www-data, which creates the socket in
# @ROOT@/run (with umask 002, so that the nginx workers, also www-data, can
# connect); @ROOT@/run must be writable by www-data.  Started as another
# user, fcgiwrap runs as that user.
#
#   -f  send the program's stderr over FastCGI: nginx writes each line to its
#       error log ("FastCGI sent in stderr"), as Apache and lighttpd do
#   -c  number of preforked fcgiwrap processes (requests served at once)
#
# fcgiwrap starts the program with its own environment plus the FastCGI
# parameters, so the hub's bearer token for the relay is given here, not in
# nginx.conf.  Started as root, read it from the file only root can read
# (owner root, mode 0600, the line `COMMONS_PROFILES_API_TOKEN=the-token`;
# the file the relay timer reads too) by uncommenting the next line: it is
# read before the switch to www-data.  Never pass the token on a command line
# (every user sees it in ps).
#set -a; . /etc/dacs-signout/relay.env; set +a
# The receiver's token (/api/logout/), the same way, from its own root-only
# file (the line `DACS_RECEIVER_TOKEN=the-token`):
#set -a; . /etc/dacs-signout/receiver.env; set +a
umask 002
if [ "$(id -u)" = 0 ]; then
    exec setpriv --reuid=www-data --regid=www-data --init-groups -- \
        /usr/sbin/fcgiwrap -f -c 2 -s unix:@ROOT@/run/fcgiwrap.sock
fi
exec /usr/sbin/fcgiwrap -f -c 2 -s unix:@ROOT@/run/fcgiwrap.sock
