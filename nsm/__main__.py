from nsm.cli import main

raise SystemExit(main())
