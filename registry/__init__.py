"""VRU registry: programmes, delivery and crime outcomes per London borough.

This package is the product's core. It never imports Streamlit: the `vru` command line, the
Streamlit pages and the tests all call the same functions here.
"""

__version__ = "0.1.0"
