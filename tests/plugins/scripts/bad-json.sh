#!/bin/sh
# Test command (json output) that prints no JSON.
echo "this is not json"
