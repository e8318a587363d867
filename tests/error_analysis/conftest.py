import os
import sys

sys.path.insert(0, os.path.dirname(__file__))                     # tide_ref.py, planted.py
sys.path.insert(0, os.path.dirname(os.path.dirname(__file__)))    # tests/
