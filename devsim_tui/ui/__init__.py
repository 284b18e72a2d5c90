"""The control room: a Textual UI that watches a `World` (snapshots out, commands in).

Nothing here reaches into engine internals; everything goes through `devsim_tui.sim.world.World`
so a remote world can stand behind the same screens. The engine never imports this package.
"""
