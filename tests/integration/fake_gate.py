"""A command provider whose every answer waits until the test lets it go:
each task's process blocks on a FIFO of its own until release() writes one
word for it ("fail" makes it fail, anything else is echoed as "answer WORD").  Tasks that
must overlap, queue or run long are ordered by conditions, never by delays."""

import errno
import os
import shutil
import stat
import tempfile
import time

from enslib import SCALE, gv


class Gate:
    """The backend "gated" (model "gated") of a command provider."""

    def __init__(self):
        self.tmp = tempfile.mkdtemp(prefix="ens-gate-")
        self.script = os.path.join(self.tmp, "gated.sh")
        # each task waits on a FIFO of its own, gone once it has its word
        with open(self.script, "w") as f:
            f.write("#!/bin/sh\nread -r prompt\ngate='%s'/wait.$$\nmkfifo \"$gate\"\n"
                    "read -r word < \"$gate\"\nrm -f \"$gate\"\n"
                    "[ \"$word\" = fail ] && { echo 'told to fail' >&2; exit 3; }\n"
                    "echo \"answer $word\"\n" % self.tmp)
        os.chmod(self.script, stat.S_IRWXU)

    def groups(self):
        """The keyfile group that configures it (add "gated" to providers)."""
        return {"providers/gated": {"plugin": gv("provider-command"), "command": gv([self.script]),
                                    "models": gv(["gated"]), "quality": gv(0.1)}}

    def waiting(self):
        """The FIFOs of the tasks waiting now, oldest first."""
        names = [n for n in os.listdir(self.tmp) if n.startswith("wait.")]
        return sorted((os.path.join(self.tmp, n) for n in names), key=lambda p: os.stat(p).st_mtime_ns)

    def release(self, word="go"):
        """Lets the task that has waited longest answer (waits until one waits,
        then until it has read its word)."""
        deadline = time.time() + 10 * SCALE
        while True:
            fifos = self.waiting()
            try:
                fd = os.open(fifos[0], os.O_WRONLY | os.O_NONBLOCK) if fifos else None
            except OSError as e:  # ENXIO: it does not read yet; ENOENT: it just went
                if e.errno not in (errno.ENXIO, errno.ENOENT):
                    raise
                fd = None
            if fd is not None:
                break
            assert time.time() < deadline, "no task waits at the gate"
            time.sleep(0.005)
        os.write(fd, (word + "\n").encode())
        os.close(fd)
        while os.path.exists(fifos[0]):
            assert time.time() < deadline, "the task did not take its word"
            time.sleep(0.005)

    def cleanup(self):
        shutil.rmtree(self.tmp, ignore_errors=True)
