from moma_cli.cli.fastpath import main

main()
