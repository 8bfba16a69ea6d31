"""Adapters to the tools around Captum that comparative XAI studies use.

Each lives in its own module and imports its tool only when used:
:mod:`captum_fillblanks.integrations.quantus` (``pip install "captum-fillblanks[quantus]"``).
"""
