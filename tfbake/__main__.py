from tfbake.cli.main import main

main()
