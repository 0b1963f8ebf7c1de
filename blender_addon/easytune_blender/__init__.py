"""EasyTune Studio Blender add-on (sidebar panel "Generate Motion").

Imports `easytune_protocol` only, never torch: it runs inside Blender's own Python. The panel,
operators and retargeting arrive with the add-on work; this package marks its place in the layout.
"""
