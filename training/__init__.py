"""Offline tooling around the FIND model: data engine, training and evaluation.

Kept import-light on purpose: importing ``training`` must not pull torch, faiss or any service client;
each subpackage imports its heavy dependencies where they are used.
"""
