from devsim_tui.cli import main

raise SystemExit(main())
