#!/usr/bin/env bash
# Prints the path of the go command: sudo's PATH often lacks /usr/local/go/bin.
for g in "$(command -v go 2>/dev/null)" /usr/local/go/bin/go /usr/lib/go/bin/go "${SUDO_USER:+/home/$SUDO_USER/go/bin/go}"; do
  [ -n "$g" ] && [ -x "$g" ] && { echo "$g"; exit 0; }
done
echo "go not found: install Go 1.26 or later (https://go.dev/dl) or put it on PATH" >&2
exit 1
