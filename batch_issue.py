#!/usr/bin/env python3
"""``python batch_issue.py ...`` behaves exactly like ``flexybulk ...``.

For people who run the tool from a checkout without installing the console
script; the commands, options and exit codes are the same.
"""

from flexybulk.cli import main

if __name__ == "__main__":
    main()
