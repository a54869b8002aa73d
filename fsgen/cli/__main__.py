from fsgen.cli import main

main()
