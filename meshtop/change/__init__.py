"""The one way meshtop changes a cluster (`workflow`): every writer — `meshtop shift`,
`meshtop rollout`, the shift dialog, its rollout, `meshtop mtls` and `:undo` — plans a
change and hands it here; nothing else calls a store's `apply`."""
