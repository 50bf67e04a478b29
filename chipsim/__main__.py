from chipsim.app.cli import main

main()
