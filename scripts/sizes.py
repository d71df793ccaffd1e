"""Binary and zipped size of each Lambda function built by cargo lambda (target/lambda/<name>/bootstrap).

The zip is made as a deployment package is: the one file `bootstrap`, deflated (level 9).
Used by `make build` (prints the table) and by the benchmark report.
"""
import io
import os
import sys
import zipfile

NOT_FUNCTIONS = {"create-table", "bench"}


def sizes(root="target/lambda", include=()):
    """{name: (binary bytes, zipped bytes)} of every function built under root."""
    found = {}
    if not os.path.isdir(root):
        return found
    for name in sorted(os.listdir(root)):
        path = os.path.join(root, name, "bootstrap")
        if (name in NOT_FUNCTIONS or name == "hello-world") and name not in include:
            continue
        if not os.path.exists(path):
            continue
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
            z.write(path, "bootstrap")
        found[name] = (os.path.getsize(path), len(buf.getvalue()))
    return found


if __name__ == "__main__":
    for name, (binary, zipped) in sizes(*sys.argv[1:2]).items():
        print(f"{name:24} {binary / 1e6:6.2f} MB binary  {zipped / 1e6:5.2f} MB zipped")
