"""Every setting of the project, defined once, on the ground floor: every layer may read it.

Grouped by concern: `folders` (the repository, the output folder's layout, and how flags and the
environment choose the folders), `pipeline` (data, validation, training, evaluation, Beam), `serving`,
`monitoring` and `kubeflow`. Nothing here computes or runs anything; it only states values.

May import: nothing of this project.
"""
