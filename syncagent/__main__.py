from syncagent.cli.main import main

main()
