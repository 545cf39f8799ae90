from tfbake.cli import main

main()
