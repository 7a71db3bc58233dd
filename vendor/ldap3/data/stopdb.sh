#!/bin/sh

kill `cat db/run/db.pid`
