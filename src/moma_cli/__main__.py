from moma_cli.cli.app import main

main()
