#!/usr/bin/env python3
"""Re-encrypt a restic key file with a cheap scrypt cost.

usage: cheap_key.py KEYFILE OUTFILE PASSWORD...

Opens KEYFILE with the first PASSWORD that fits (the MAC decides) and writes
to OUTFILE a key file for the same master key and password, with the same
created/username/hostname, but scrypt N=128, r=1, p=1 (the cost of restic's
own test repositories) and a fresh salt.  Exit 1 when no password fits.

The fixtures' key files have restic's default cost, about a CPU second per
program run; the e2e tests' copies of the fixtures get these instead
(tests/fixtures/cheap-keys, used by lib.sh copy_repo).
"""
import base64
import hashlib
import hmac
import json
import os
import sys

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.poly1305 import Poly1305


def user_key(password, salt, n, r, p):
    # maxmem: 128 * r * (N + p + 2) bytes and then some
    return hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, dklen=64,
                          maxmem=256 * r * (n + p + 2) + (1 << 20))


def mac(key, iv, ct):
    # restic's MAC: Poly1305-AES, the nonce encrypted with the AES key k
    s = Cipher(algorithms.AES(key[32:48]), modes.ECB()).encryptor().update(iv)
    return Poly1305.generate_tag(key[48:] + s, ct)


def aes_ctr(key, iv, data):
    return Cipher(algorithms.AES(key[:32]), modes.CTR(iv)).encryptor().update(data)


def open_key(kf, password):
    raw = base64.b64decode(kf["data"])
    iv, ct, tag = raw[:16], raw[16:-16], raw[-16:]
    key = user_key(password, base64.b64decode(kf["salt"]), kf["N"], kf["r"], kf["p"])
    if not hmac.compare_digest(mac(key, iv, ct), tag):
        return None
    return aes_ctr(key, iv, ct)


def seal_key(kf, password, master_json):
    salt, iv = os.urandom(64), os.urandom(16)
    key = user_key(password, salt, 128, 1, 1)
    ct = aes_ctr(key, iv, master_json)
    out = {k: kf[k] for k in ("created", "username", "hostname") if k in kf}
    out.update({"kdf": "scrypt", "N": 128, "r": 1, "p": 1, "salt": base64.b64encode(salt).decode(),
                "data": base64.b64encode(iv + ct + mac(key, iv, ct)).decode()})
    return json.dumps(out, separators=(",", ":")).encode()


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    kf = json.load(open(sys.argv[1]))
    for password in sys.argv[3:]:
        master = open_key(kf, password)
        if master is not None:
            json.loads(master)  # a master key document, or an exception
            open(sys.argv[2], "wb").write(seal_key(kf, password, master))
            return 0
    print("cheap_key.py: no password fits %s" % sys.argv[1], file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
