#!/usr/bin/env python3
"""Write a C header with the draft-mcgrew-gcm-test-01 AES-GCM-ESP cases.
usage: gen_vectors_h.py IN.json OUT.h"""
import json
import sys

d = json.load(open(sys.argv[1]))


def arr(h):
    b = bytes.fromhex(h)
    return "{" + ",".join("0x%02x" % x for x in b) + "}", len(b)


out = ["/* generated from %s: %s, %s */" % (sys.argv[1].split('/')[-1],
                                           d["source"]["document"], d["source"]["section"]),
       "struct vec { int num; const char *name; int key_bits; int esn;",
       "  unsigned int seq_high; const unsigned char *keymat; unsigned int keymat_len;",
       "  const unsigned char *packet; unsigned int packet_len;",
       "  const unsigned char *plaintext; unsigned int plaintext_len; };"]
rows = []
for c in d["cases"]:
    n = c["case"]
    for f in ("keymat", "packet", "plaintext"):
        a, ln = arr(c[f])
        out.append("static const unsigned char v%d_%s[%d] = %s;" % (n, f, max(ln, 1), a if ln else "{0}"))
    rows.append('  {%d, "%s", %d, %d, 0x%sU, v%d_keymat, %d, v%d_packet, %d, v%d_plaintext, %d},' % (
        n, c["name"], c["key_bits"], 1 if c["esn"] else 0, c.get("seq_high", "0"),
        n, len(c["keymat"]) // 2, n, len(c["packet"]) // 2, n, len(c["plaintext"]) // 2))
out.append("static const struct vec vectors[] = {")
out += rows
out.append("};")
open(sys.argv[2], "w").write("\n".join(out) + "\n")
