#!/bin/sh
# Test command that never answers: records its pid (= its process group,
# since the provider makes it a group leader) in $ENS_TEST_PIDFILE, starts a
# child that would outlive it if only the leader were killed, and waits.
echo $$ > "$ENS_TEST_PIDFILE.tmp" && mv "$ENS_TEST_PIDFILE.tmp" "$ENS_TEST_PIDFILE"
printf 'thinking '
sleep 60 &
wait
