from assist import create_app

app = create_app()
