import sys

from specbias.cli import main

sys.exit(main())
