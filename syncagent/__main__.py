from syncagent.cli.entry import main

main()
