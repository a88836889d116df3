"""Graded assignments of the course built on the book (see chapter_course).

One module per chapter; :mod:`assignments.grading` runs their checks.
"""
